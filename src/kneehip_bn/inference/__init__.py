"""kneehip_bn.inference."""
