"""Dropin for the built-in providers: discovered by twisted.plugin like any site's own plugin."""
from dicomweb_daemon.index.postgresql import PostgresIndex
from dicomweb_daemon.index.sqlite import SqliteIndex
from dicomweb_daemon.storage.filesystem import FilesystemStorage
from dicomweb_daemon.storage.object_store import ObjectStorage, azure_store, s3_store

filesystem_storage = FilesystemStorage()
s3_storage = ObjectStorage("s3", "AwsS3Storage", s3_store)
azure_storage = ObjectStorage("azure", "AzureBlobStorage", azure_store)
sqlite_index = SqliteIndex()
postgresql_index = PostgresIndex()
