"""Blueprint evolution: where compared blueprints come from, and checking stored documents."""
