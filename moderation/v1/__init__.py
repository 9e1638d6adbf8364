"""Generated wire types for moderation.v1 (protoc output; do not edit, run `make proto`)."""
