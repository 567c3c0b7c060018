"""selflow: a dataflow dispatcher on top of Celery, configured in Selinon-format YAML."""

__version__ = "0.1.0"
