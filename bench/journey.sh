#!/usr/bin/env bash
# A full client journey with curl against a running server (default http://127.0.0.1:8000/api).
# Exits non-zero at the first unexpected status. Usage: bench/journey.sh [BASE_URL]
set -euo pipefail
BASE="${1:-http://127.0.0.1:8000/api}"
RUN="$(date +%s%N | tail -c 9)"

step() {  # step NAME EXPECTED_STATUS METHOD PATH [JSON] [TOKEN]
  local name=$1 want=$2 method=$3 path=$4 data=${5:-} token=${6:-} args=()
  args=(-s -o /tmp/journey.out -w '%{http_code}' -X "$method" "$BASE$path")
  [ -n "$data" ] && args+=(-H 'Content-Type: application/json' -d "$data")
  [ -n "$token" ] && args+=(-H "Authorization: Token $token")
  local got; got=$(curl "${args[@]}")
  if [ "$got" != "$want" ]; then echo "FAIL $name: $got (wanted $want): $(cat /tmp/journey.out)"; exit 1; fi
  echo "ok   $name ($got)"
}
field() { python3 -c "import json,sys; d=json.load(open('/tmp/journey.out')); print(eval(sys.argv[1]))" "$1"; }

step register-author 201 POST /users "{\"user\":{\"username\":\"author$RUN\",\"email\":\"author$RUN@x.org\",\"password\":\"password-1\"}}"
A=$(field 'd["user"]["token"]')
step register-reader 201 POST /users "{\"user\":{\"username\":\"reader$RUN\",\"email\":\"reader$RUN@x.org\",\"password\":\"password-2\"}}"
step register-taken 409 POST /users "{\"user\":{\"username\":\"reader$RUN\",\"email\":\"other$RUN@x.org\",\"password\":\"password-2\"}}"
step login-reader 200 POST /users/login "{\"user\":{\"email\":\"reader$RUN@x.org\",\"password\":\"password-2\"}}"
R=$(field 'd["user"]["token"]')
step login-wrong 401 POST /users/login "{\"user\":{\"email\":\"reader$RUN@x.org\",\"password\":\"wrong-pass\"}}"
step current-user 200 GET /user "" "$R"
step update-user 200 PUT /user '{"user":{"bio":"I read things"}}' "$R"
step follow 200 POST "/profiles/author$RUN/follow" "" "$R"
step profile 200 GET "/profiles/author$RUN" "" "$R"
[ "$(field 'd["profile"]["following"]')" = "True" ] || { echo "FAIL following"; exit 1; }
step create-article 201 POST /articles '{"article":{"title":"Journey by curl","description":"d","body":"b","tagList":["curl","journey"]}}' "$A"
SLUG=$(field 'd["article"]["slug"]')
step create-unauthenticated 401 POST /articles '{"article":{"title":"x","description":"d","body":"b"}}'
step create-invalid 422 POST /articles '{"article":{"title":"","description":"d","body":"b"}}' "$A"
step get-article 200 GET "/articles/$SLUG"
step update-article 200 PUT "/articles/$SLUG" '{"article":{"body":"edited"}}' "$A"
step update-forbidden 403 PUT "/articles/$SLUG" '{"article":{"body":"mine"}}' "$R"
step favorite 200 POST "/articles/$SLUG/favorite" "" "$R"
[ "$(field 'd["article"]["favoritesCount"]')" = "1" ] || { echo "FAIL favoritesCount"; exit 1; }
step comment 201 POST "/articles/$SLUG/comments" '{"comment":{"body":"Nice"}}' "$R"
CID=$(field 'd["comment"]["id"]')
step comments 200 GET "/articles/$SLUG/comments"
step feed 200 GET /articles/feed "" "$R"
[ "$(field 'd["articles"][0]["slug"]')" = "$SLUG" ] || { echo "FAIL feed"; exit 1; }
step list-filtered 200 GET "/articles?tag=curl&author=author$RUN&favorited=reader$RUN"
[ "$(field 'd["articlesCount"]')" = "1" ] || { echo "FAIL filters"; exit 1; }
step tags 200 GET /tags
step unfavorite 200 DELETE "/articles/$SLUG/favorite" "" "$R"
step delete-comment-forbidden 403 DELETE "/articles/$SLUG/comments/$CID" "" "$A"
step delete-comment 204 DELETE "/articles/$SLUG/comments/$CID" "" "$R"
step unfollow 200 DELETE "/profiles/author$RUN/follow" "" "$R"
step delete-article 204 DELETE "/articles/$SLUG" "" "$A"
step deleted-article 404 GET "/articles/$SLUG"
step unknown-route 404 GET /nothing
echo "journey passed against $BASE"
