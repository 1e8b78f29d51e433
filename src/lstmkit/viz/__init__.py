"""Seeing inside: the explorer page, the LSTM game and the static plots.

The top layer of lstmkit: it reads trained models and traces and writes pages and figures;
nothing below imports it.
"""
