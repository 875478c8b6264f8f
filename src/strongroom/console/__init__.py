"""The web console's files (HTML shell, ES modules, CSS): package data served by api/console.py."""
