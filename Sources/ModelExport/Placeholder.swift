// Placeholder: replaced by the exporters.
