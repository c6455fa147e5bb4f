"""Dropin for the built-in WADO-RS metadata strategies (Full, MainDicomTags, Extrapolate)."""
from dicomweb_daemon.metadata.strategies import ExtrapolateStrategy, FullStrategy, MainDicomTagsStrategy

full_metadata = FullStrategy()
main_dicom_tags_metadata = MainDicomTagsStrategy()
extrapolate_metadata = ExtrapolateStrategy()
