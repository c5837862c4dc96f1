// `retort config CMD`: every key a command reads, with its default, range and help, as markdown
// (the README's key tables are this output; tests/scripts/readme_keys.sh checks that they agree).
#pragma once
#include <string>
#include <vector>

namespace retort {

// Commands whose keys come from option tables.
std::vector<std::string> documented_commands();
// The markdown for `command`; ConfigError listing the documented commands for any other.
std::string config_markdown(const std::string& command);

}  // namespace retort
