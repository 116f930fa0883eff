"""SoMLier hooks: they own every connection and all I/O."""
