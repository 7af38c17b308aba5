"""The counter panel: what the OLED shows and what its four buttons do.

- :mod:`appliance.ui.text` - the panel's words in Chinese and English;
- :mod:`appliance.ui.screens` - what each screen says, from a snapshot of the box (pure);
- :mod:`appliance.ui.draw` - a screen drawn into 128x64 pixels with a CJK bitmap font;
- :mod:`appliance.ui.menu` - where the buttons take you (pure state machine);
- :mod:`appliance.ui.panel` - the thread in the daemon that ties them to the box, the display
  and the buttons, and never blocks sending.

No wires here: the display is any luma device and the buttons call
:meth:`~appliance.ui.panel.Panel.button` (see ``hw/display`` and ``hw/buttons``).
"""
