"""HTTP: the site, the root resource, and the route families (REST, DICOMweb)."""
