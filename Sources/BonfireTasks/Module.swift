// BonfireTasks module (placeholder until filled)
