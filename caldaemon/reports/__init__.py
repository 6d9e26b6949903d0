"""What a person looks at (DESIGN.md §11): the week as facts, text, JSON and a picture;
pure over the core's results."""
