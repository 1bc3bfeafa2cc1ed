// BonfireAlgorithms module (placeholder until filled)
