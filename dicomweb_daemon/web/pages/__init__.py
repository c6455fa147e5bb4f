"""The daemon's web pages for people (``/ui/``): plain HTML, CSS and JavaScript calling the public
REST and DICOMweb API, served as files; no build step."""
