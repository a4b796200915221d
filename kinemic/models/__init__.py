"""Networks: MDM (state-dict compatible with the official checkpoints), the MIC module, ST-GCN."""
