"""kneehip_bn.teaching."""
