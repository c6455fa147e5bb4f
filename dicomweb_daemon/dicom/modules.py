"""The attributes of the information modules behind Orthanc's ``/module`` routes (PS3.3 §C.7, §C.12).

``/patients/{id}/module`` (and ``/studies/{id}/module-patient``) shows the Patient Module, ``/studies/{id}/module``
the General Study Module, ``/series/{id}/module`` the General Series Module and
``/instances/{id}/module`` the SOP Common Module, as read from one instance of the resource.
"""
from __future__ import annotations

from pydicom.datadict import tag_for_keyword

_PATIENT = (  # PS3.3 §C.7.1.1 Patient Module
    "PatientName", "PatientID", "IssuerOfPatientID", "IssuerOfPatientIDQualifiersSequence", "TypeOfPatientID",
    "PatientBirthDate", "PatientBirthTime", "PatientBirthDateInAlternativeCalendar",
    "PatientDeathDateInAlternativeCalendar", "PatientAlternativeCalendar", "PatientSex",
    "ReferencedPatientPhotoSequence", "QualityControlSubject", "ReferencedPatientSequence", "OtherPatientIDs",
    "OtherPatientIDsSequence", "OtherPatientNames", "EthnicGroup", "EthnicGroupCodeSequence",
    "PatientComments", "PatientSpeciesDescription", "PatientSpeciesCodeSequence", "PatientBreedDescription",
    "PatientBreedCodeSequence", "BreedRegistrationSequence", "StrainDescription", "StrainNomenclature",
    "StrainCodeSequence", "StrainAdditionalInformation", "StrainStockSequence",
    "GeneticModificationsSequence", "ResponsiblePerson", "ResponsiblePersonRole", "ResponsibleOrganization",
    "PatientIdentityRemoved", "DeidentificationMethod", "DeidentificationMethodCodeSequence",
    "SourcePatientGroupIdentificationSequence", "GroupOfPatientsIdentificationSequence",
)
_STUDY = (  # PS3.3 §C.7.2.1 General Study Module (Orthanc leaves the Patient Study Module out)
    "StudyInstanceUID", "StudyDate", "StudyTime", "ReferringPhysicianName",
    "ReferringPhysicianIdentificationSequence", "ConsultingPhysicianName",
    "ConsultingPhysicianIdentificationSequence", "StudyID", "AccessionNumber",
    "IssuerOfAccessionNumberSequence", "StudyDescription", "PhysiciansOfRecord",
    "PhysiciansOfRecordIdentificationSequence", "NameOfPhysiciansReadingStudy",
    "PhysiciansReadingStudyIdentificationSequence", "RequestingServiceCodeSequence", "ReferencedStudySequence",
    "ProcedureCodeSequence", "ReasonForPerformedProcedureCodeSequence",
)
_SERIES = (  # PS3.3 §C.7.3.1 General Series Module
    "Modality", "SeriesInstanceUID", "SeriesNumber", "Laterality", "SeriesDate", "SeriesTime",
    "PerformingPhysicianName", "PerformingPhysicianIdentificationSequence", "ProtocolName",
    "SeriesDescription", "SeriesDescriptionCodeSequence", "OperatorsName", "OperatorIdentificationSequence",
    "ReferencedPerformedProcedureStepSequence", "RelatedSeriesSequence", "AnatomicalOrientationType",
    "BodyPartExamined", "PatientPosition", "SmallestPixelValueInSeries", "LargestPixelValueInSeries",
    "RequestAttributesSequence", "PerformedProcedureStepID", "PerformedProcedureStepStartDate",
    "PerformedProcedureStepStartTime",
    "PerformedProcedureStepDescription", "PerformedProtocolCodeSequence",
    "CommentsOnThePerformedProcedureStep", "TreatmentSessionUID",
)
_INSTANCE = (  # PS3.3 §C.12.1 SOP Common Module
    "SOPClassUID", "SOPInstanceUID", "SpecificCharacterSet", "InstanceCreationDate", "InstanceCreationTime",
    "InstanceCoercionDateTime", "InstanceCreatorUID", "RelatedGeneralSOPClassUID",
    "OriginalSpecializedSOPClassUID", "CodingSchemeIdentificationSequence",
    "ContextGroupIdentificationSequence", "MappingResourceIdentificationSequence", "TimezoneOffsetFromUTC",
    "ContributingEquipmentSequence", "InstanceNumber", "SOPInstanceStatus", "SOPAuthorizationDateTime",
    "SOPAuthorizationComment", "AuthorizationEquipmentCertificationNumber", "MACParametersSequence",
    "DigitalSignaturesSequence", "EncryptedAttributesSequence", "OriginalAttributesSequence",
    "HL7StructuredDocumentReferenceSequence", "LongitudinalTemporalInformationModified", "QueryRetrieveView",
    "ConversionSourceAttributesSequence", "ContentQualification", "PrivateDataElementCharacteristicsSequence",
    "InstanceOriginStatus", "BarcodeValue",
)


def _tags(keywords: tuple[str, ...]) -> frozenset[int]:
    return frozenset(t for t in (tag_for_keyword(k) for k in keywords) if t is not None)


MODULES: dict[str, frozenset[int]] = {
    "Patient": _tags(_PATIENT), "Study": _tags(_STUDY), "Series": _tags(_SERIES), "Instance": _tags(_INSTANCE),
}
