// BonfireCluster module (placeholder until filled)
