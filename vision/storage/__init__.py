"""Storage: users, dogs, clips (with their analysis results), shares and reviews.

SQL through SQLAlchemy 2 + Alembic; files content-addressed.

SQLite under ``HINDSIGHT_DATA_DIR`` by default; ``HINDSIGHT_DB_URL`` switches to
another database (e.g. PostgreSQL for a clinic).
"""

from vision.storage.db import Store, default_data_dir

__all__ = ["Store", "default_data_dir"]
