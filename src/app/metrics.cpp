// metrics: the registry and the text exposition format.
#include "app/metrics.hpp"

#include <fmt/format.h>

#include <cmath>
#include <stdexcept>

namespace mles::app {

namespace {

bool valid_name(std::string_view n) {
  if (n.empty()) return false;
  for (std::size_t i = 0; i < n.size(); ++i) {
    const char c = n[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

bool valid_label_name(std::string_view n) {
  return valid_name(n) && n.find(':') == std::string_view::npos && n.substr(0, 2) != "__";
}

// HELP text: backslash and newline escaped; label values also the double quote.
void append_escaped(std::string& out, std::string_view text, bool quote) {
  for (const char c : text) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else if (quote && c == '"') out += "\\\"";
    else out += c;
  }
}

void append_value(std::string& out, double v) {
  if (std::isnan(v)) out += "NaN";
  else if (std::isinf(v)) out += v > 0 ? "+Inf" : "-Inf";
  else if (v == std::trunc(v) && std::fabs(v) < 9.007199254740992e15)
    fmt::format_to(std::back_inserter(out), "{}", static_cast<long long>(v));
  else fmt::format_to(std::back_inserter(out), "{}", v);
}

}  // namespace

void metric_writer::sample(std::initializer_list<label> labels, double value) {
  out_ += name_;
  if (labels.size() > 0) {
    out_ += '{';
    bool first = true;
    for (const auto& [k, v] : labels) {
      if (!valid_label_name(k)) throw std::logic_error("bad metric label name '" + std::string(k) + "'");
      if (!first) out_ += ',';
      first = false;
      out_ += k;
      out_ += "=\"";
      append_escaped(out_, v, true);
      out_ += '"';
    }
    out_ += '}';
  }
  out_ += ' ';
  append_value(out_, value);
  out_ += '\n';
}

void metrics_registry::add(std::string name, metric_type type, std::string help, collect_fn collect) {
  if (!valid_name(name)) throw std::logic_error("bad metric name '" + name + "'");
  const bool total = name.size() > 6 && name.compare(name.size() - 6, 6, "_total") == 0;
  if ((type == metric_type::counter) != total)
    throw std::logic_error("metric '" + name + "': counters, and only counters, end in _total");
  for (const auto& f : families_) {
    if (f.name == name) throw std::logic_error("metric '" + name + "' registered twice");
  }
  families_.push_back({std::move(name), type, std::move(help), std::move(collect)});
}

void metrics_registry::add(std::string name, metric_type type, std::string help, std::function<double()> value) {
  add(std::move(name), type, std::move(help), collect_fn([value = std::move(value)](metric_writer& w) { w.sample(value()); }));
}

std::string metrics_registry::render() const {
  std::string out;
  out.reserve(families_.size() * 160);
  for (const auto& f : families_) {
    out += "# HELP ";
    out += f.name;
    out += ' ';
    append_escaped(out, f.help, false);
    out += "\n# TYPE ";
    out += f.name;
    out += f.type == metric_type::counter ? " counter\n" : " gauge\n";
    metric_writer w(out, f.name);
    f.collect(w);
  }
  return out;
}

}  // namespace mles::app
