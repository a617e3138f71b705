// A user's journey through the TypeScript client openapi-typescript and openapi-fetch make from docs/openapi.json.
//
// Run by tests/integration/test_generated_clients.py: `openapi-typescript` writes schema.d.ts from the committed
// document, `tsc --strict` compiles this file against it (a field the document gets wrong is a type error), and
// `node build/journey.js BASE_URL` runs it against a live service; any failed step exits non-zero. Errors are read
// as the document's GenericErrorModel, typed.
import createClient from "openapi-fetch";
import type { components, paths } from "./schema.js";

type ErrorBody = components["schemas"]["GenericErrorModel"];

function check(condition: boolean, what: string): asserts condition {
  if (!condition) {
    throw new Error(`journey step failed: ${what}`);
  }
}

function expectError(error: ErrorBody | undefined, response: Response, status: number, key: string): void {
  check(response.status === status, `status ${response.status}, expected ${status}`);
  check(error !== undefined && Array.isArray(error.errors[key]) && error.errors[key].length > 0, `errors.${key}`);
}

async function main(base: string): Promise<void> {
  const client = createClient<paths>({ baseUrl: base });
  const tag = Math.random().toString(36).slice(2, 10);
  const password = "password123";
  const auth = (token: string) => ({ headers: { Authorization: `Token ${token}` } });

  async function register(name: string): Promise<string> {
    const { data, response } = await client.POST("/api/users", {
      body: { user: { username: name, email: `${name}@example.org`, password } },
    });
    check(response.status === 201 && data !== undefined && data.user.username === name, `register ${name}`);
    return data.user.token;
  }

  const alice = `alice${tag}`;
  const bob = `bob${tag}`;
  await register(alice);
  const bobToken = await register(bob);
  const signedIn = await client.POST("/api/users/login", {
    body: { user: { email: `${alice}@example.org`, password } },
  });
  check(signedIn.data !== undefined, "login");
  const aliceToken = signedIn.data.user.token;
  const me = await client.GET("/api/user", auth(aliceToken));
  check(me.data?.user.username === alice, "current user");
  const bio = await client.PUT("/api/user", { ...auth(aliceToken), body: { user: { bio: "writes" } } });
  check(bio.data?.user.bio === "writes", "edit the user");

  const created = await client.POST("/api/articles", {
    ...auth(aliceToken),
    body: { article: { title: `Generated ${tag}`, description: "d", body: "b", tagList: [tag, "gen"] } },
  });
  check(created.response.status === 201 && created.data !== undefined, "create an article");
  const slug: string = created.data.article.slug;
  check([...created.data.article.tagList].sort().join() === [tag, "gen"].sort().join(), "its tags");
  const edited = await client.PUT("/api/articles/{slug}", {
    ...auth(aliceToken),
    params: { path: { slug } },
    body: { article: { body: "edited" } },
  });
  check(edited.data?.article.body === "edited", "edit the article");
  const read = await client.GET("/api/articles/{slug}", { params: { path: { slug } } });
  check(read.data?.article.body === "edited" && read.data.article.favorited === false, "read it anonymously");
  await client.POST("/api/articles", {
    ...auth(aliceToken),
    body: { article: { title: `Second ${tag}`, description: "d", body: "b", tagList: [tag] } },
  });

  const firstPage = await client.GET("/api/articles", { params: { query: { tag, limit: 1 } } });
  check(firstPage.data?.articlesCount === 2 && firstPage.data.articles.length === 1, "a page of one of two");
  const secondPage = await client.GET("/api/articles", { params: { query: { tag, limit: 1, offset: 1 } } });
  check(secondPage.data?.articles[0]?.slug === slug, "newest first: the first article on the second page");
  const byAuthor = await client.GET("/api/articles", { params: { query: { author: alice } } });
  check(byAuthor.data?.articlesCount === 2, "filter by author");
  const tags = await client.GET("/api/tags");
  check(tags.data?.tags.includes(tag) === true, "the tag is listed");

  const favorited = await client.POST("/api/articles/{slug}/favorite", { ...auth(bobToken), params: { path: { slug } } });
  check(favorited.data?.article.favorited === true && favorited.data.article.favoritesCount === 1, "favorite");
  const byFan = await client.GET("/api/articles", { ...auth(bobToken), params: { query: { favorited: bob } } });
  check(byFan.data?.articles.length === 1 && byFan.data.articles[0]?.favorited === true, "filter by favoriter");
  const said = await client.POST("/api/articles/{slug}/comments", {
    ...auth(bobToken),
    params: { path: { slug } },
    body: { comment: { body: "nice" } },
  });
  check(said.response.status === 201 && said.data !== undefined, "comment");
  const commentId: number = said.data.comment.id;
  const comments = await client.GET("/api/articles/{slug}/comments", { params: { path: { slug } } });
  check(comments.data?.comments.map((c) => c.body).join() === "nice", "the comments");

  const followed = await client.POST("/api/profiles/{username}/follow", {
    ...auth(bobToken),
    params: { path: { username: alice } },
  });
  check(followed.data?.profile.following === true, "follow");
  const feed = await client.GET("/api/articles/feed", auth(bobToken));
  check(feed.data?.articlesCount === 2 && feed.data.articles.every((a) => a.author.username === alice), "the feed");

  // The typed errors: 401, 403, 404, 409, 422.
  const badToken = await client.GET("/api/user", auth("x.y.z"));
  expectError(badToken.error, badToken.response, 401, "token");
  const notYours = await client.DELETE("/api/articles/{slug}", { ...auth(bobToken), params: { path: { slug } } });
  expectError(notYours.error, notYours.response, 403, "article");
  const missing = await client.GET("/api/articles/{slug}", { params: { path: { slug: `missing-${tag}` } } });
  expectError(missing.error, missing.response, 404, "article");
  const taken = await client.POST("/api/users", {
    body: { user: { username: alice, email: `other${tag}@example.org`, password } },
  });
  expectError(taken.error, taken.response, 409, "username");
  const blank = await client.POST("/api/articles", {
    ...auth(aliceToken),
    body: { article: { title: "", description: "d", body: "b" } },
  });
  expectError(blank.error, blank.response, 422, "title");

  const uncommented = await client.DELETE("/api/articles/{slug}/comments/{id}", {
    ...auth(bobToken),
    params: { path: { slug, id: commentId } },
  });
  check(uncommented.response.ok, "delete the comment");
  const unfollowed = await client.DELETE("/api/profiles/{username}/follow", {
    ...auth(bobToken),
    params: { path: { username: alice } },
  });
  check(unfollowed.data?.profile.following === false, "unfollow");
  const unfavorited = await client.DELETE("/api/articles/{slug}/favorite", { ...auth(bobToken), params: { path: { slug } } });
  check(unfavorited.data?.article.favoritesCount === 0, "unfavorite");
  const deleted = await client.DELETE("/api/articles/{slug}", { ...auth(aliceToken), params: { path: { slug } } });
  check(deleted.response.ok, "delete the article");
  const gone = await client.GET("/api/articles/{slug}", { params: { path: { slug } } });
  expectError(gone.error, gone.response, 404, "article");
  console.log("typescript journey: ok");
}

main(process.argv[2] ?? "http://127.0.0.1:8000").catch((reason: unknown) => {
  console.error(reason);
  process.exit(1);
});
