"""SoMLier's online model server: the k8s_flask contract (`POST /`, `POST /result`,
`/src_download`, `/model_download`) with atomic model switches across gunicorn workers."""
