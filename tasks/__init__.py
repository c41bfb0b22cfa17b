"""Task files and data generators shipped with capcast (installed as ``capcast_tasks``)."""
