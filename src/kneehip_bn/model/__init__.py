"""kneehip_bn.model."""
