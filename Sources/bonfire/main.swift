print("bonfire: under construction")
