"""Monitoring: the platform's health in figures (`status`), for `friren status` and the
`platform_status` asset (`defs`)."""
