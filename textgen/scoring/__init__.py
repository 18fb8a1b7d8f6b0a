"""Metrics of generated text against references (sacreBLEU, rouge-score): corpus scores with
intervals, sentence scores, paired significance."""
