// The HTTP phase's state of a session: Beast's parser for the next request, buffered
// (pipelined) bytes, the request being answered and the file body being streamed.
// Owned by its session; used only on the session's loop.
#pragma once

#include "http/file_server.hpp"

#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>

#include <cstdint>
#include <optional>
#include <string>

namespace mles::net {

// Beast's parser for the next request, the request being answered, and the file body being
// streamed. Alive only during the HTTP phase.
struct http_state {
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser;
  boost::beast::http::request<boost::beast::http::string_body> request;
  std::string buffer;     // received bytes not parsed yet (pipelined requests wait here)
  std::size_t head_consumed = 0;  // bytes of the current request head the parser has taken
  bool busy = false;      // a response is being produced or streamed
  bool keep_alive = true;
  http::file_response pending;  // a file response waiting for a file slot, or for compression
  bool waiting_for_slot = false;
  bool has_slot = false;
  int fd = -1;
  std::uint64_t offset = 0;
  std::uint64_t remaining = 0;
};

}  // namespace mles::net
