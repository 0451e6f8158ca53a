"""The store layer: models, engine and sessions, migrations, and the queries metrics use."""
