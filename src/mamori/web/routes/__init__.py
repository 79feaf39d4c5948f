"""The console's routes, one module per page group; ``mamori.web.console`` mounts them under ``/console``."""
