"""Process-wide pieces of the service: settings, metrics, errors."""
