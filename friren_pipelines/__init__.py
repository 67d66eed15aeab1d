"""friren-pipelines: durable, queryable market data and portfolio history for a trading desk."""
