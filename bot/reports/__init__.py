"""Reports: frozen dataclasses built from the metrics, ready for any renderer."""
