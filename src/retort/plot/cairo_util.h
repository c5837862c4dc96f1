// Small cairo helpers shared by the plots (scatter.cpp, curves.cpp).
#pragma once
#include <cairo.h>

#include <memory>
#include <string>

namespace retort {

struct SurfaceDeleter {
  void operator()(cairo_surface_t* s) const { cairo_surface_destroy(s); }
};
struct ContextDeleter {
  void operator()(cairo_t* c) const { cairo_destroy(c); }
};
using Surface = std::unique_ptr<cairo_surface_t, SurfaceDeleter>;
using Context = std::unique_ptr<cairo_t, ContextDeleter>;

// Text width at the current font.
double text_width(cairo_t* cr, const std::string& text);
// A 1-2-5 step giving about `count` ticks over the range.
double nice_step(double range, int count);

}  // namespace retort
