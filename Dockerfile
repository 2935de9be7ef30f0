# topicdesk: the service and its CLI. Multi-stage: dependencies are installed (and the type
# check runs) in a build stage; the final image has production dependencies only and runs as
# the unprivileged `node` user. The service runs compiled to JavaScript (dist/), as with `npm start`;
# the CLI (bin/topicdesk.js) runs its TypeScript through tsx.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY migrations ./migrations
COPY config ./config
COPY bin ./bin
COPY seeds ./seeds
COPY scripts/build.mjs ./scripts/build.mjs
RUN npx tsc --noEmit -p . && node scripts/build.mjs && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production HOST=0.0.0.0 PORT=3000 TOPICDESK_DATA_DIR=/data
WORKDIR /app
COPY --from=build --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/package.json /app/tsconfig.json ./
COPY --from=build --chown=node:node /app/src ./src
COPY --from=build --chown=node:node /app/migrations ./migrations
COPY --from=build --chown=node:node /app/config ./config
COPY --from=build --chown=node:node /app/bin ./bin
COPY --from=build --chown=node:node /app/seeds ./seeds
COPY --from=build --chown=node:node /app/scripts/build.mjs ./scripts/build.mjs
COPY --from=build --chown=node:node /app/dist ./dist
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=3s CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# As `npm start` (package.json), which also rebuilds dist/ first. The heap flag: src/main.ts.
CMD ["node", "--max-old-space-size=1024", "dist/src/main.js"]
