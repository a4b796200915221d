"""Readers and writers of the real data formats: HumanML3D, VIBE, SMPL, NTU RGB+D, PYSKL, 24-joint arrays."""
