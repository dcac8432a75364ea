"""The network itself: configuration, level declaration, checked addition, blocks, backbone, FPN."""
