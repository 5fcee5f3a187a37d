"""kneehip_bn.io."""
