"""The full-screen TUI (Textual).  Nothing outside this package imports Textual."""
