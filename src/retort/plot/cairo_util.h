// Small cairo helpers shared by the plots (scatter.cpp, curves.cpp).
#pragma once
#include <cairo.h>

#include <string>

namespace retort {

// Text width at the current font.
double text_width(cairo_t* cr, const std::string& text);
// A 1-2-5 step giving about `count` ticks over the range.
double nice_step(double range, int count);

}  // namespace retort
