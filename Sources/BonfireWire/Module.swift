// BonfireWire module (placeholder until filled)
