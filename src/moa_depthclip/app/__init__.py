"""The web app (``moa-depthclip app``): upload images, see and download metric depth.

:mod:`moa_depthclip.app.handlers` holds everything the page does as plain functions (tested without a
browser); :mod:`moa_depthclip.app.ui` lays them out with Gradio, imported only when the app starts
(the optional extra ``pip install 'moa-depthclip[app]'``).
"""
