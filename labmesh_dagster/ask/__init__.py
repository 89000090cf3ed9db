"""Asking questions of the lab's data: answers with numbered citations, under the asker's access."""
