"""Candor's RFC 6962 Certificate Transparency log, with the static-ct-api read path written as files."""
