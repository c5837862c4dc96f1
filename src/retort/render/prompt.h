// The text side of the toy text-to-3D task: prompts like "a red torus, side view" over a fixed
// vocabulary, and the class ids that stand in for text embeddings.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "retort/render/camera.h"
#include "retort/render/world.h"

namespace retort {

inline constexpr int64_t kNumObjectClasses = kNumShapes * kNumColours;               // 48
inline constexpr int64_t kNumPromptClasses = kNumObjectClasses * kNumViews;          // 192

struct Prompt {
  Shape shape = Shape::sphere;
  Colour colour = Colour::red;
  std::optional<View> view;  // unset: no view suffix
};

// "[a|an] COLOUR SHAPE[,] [VIEW [view]]", case and whitespace insensitive ("grey" also as "gray").
// Throws Error naming the offending word and listing the vocabulary.
Prompt parse_prompt(std::string_view text);
// "a red torus", "an orange cube, overhead view".
std::string prompt_text(const Prompt& p);
// The vocabulary as one line: "articles: a, an; colours: ...; shapes: ...; views: ...".
std::string vocabulary();
const std::vector<std::string>& view_names();

// object_class = shape * 8 + colour in [0, 48); prompt_class = object_class * 4 + view in [0, 192).
int64_t object_class(Shape s, Colour c);
int64_t prompt_class(Shape s, Colour c, View v);
// Inverses; throw Error for an id out of range. object classes come back without a view.
Prompt prompt_from_object_class(int64_t id);
Prompt prompt_from_prompt_class(int64_t id);
// prompt_text of every class, in id order.
std::vector<std::string> object_class_names();
std::vector<std::string> prompt_class_names();

}  // namespace retort
