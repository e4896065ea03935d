"""The SQLite gallery (people, face templates) and the check-in log. No Qt."""
