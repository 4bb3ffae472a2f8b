"""stoic: async-first resilience for Python."""
