// BonfireModel module (placeholder until filled)
