"""Dropin for the built-in providers: discovered by twisted.plugin like any site's own plugin."""
from dicomweb_daemon.index.postgresql import PostgresIndex
from dicomweb_daemon.index.sqlite import SqliteIndex
from dicomweb_daemon.storage.filesystem import FilesystemStorage

filesystem_storage = FilesystemStorage()
sqlite_index = SqliteIndex()
postgresql_index = PostgresIndex()
