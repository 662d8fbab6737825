"""The Alembic environment and versions of the datastore's tables.

They live at the top of the repository, where an operator looks for them, and are installed
as the ``datastore.migrations`` package (``setup.py`` maps the folder).
"""
