"""Pure compute on numpy arrays: no database, HTTP or Celery here."""
